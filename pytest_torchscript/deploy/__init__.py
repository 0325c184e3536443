"""The round trips: the artifact saved and loaded back where it is deployed, in this process,
in a fresh Python process that never imports the user's code (``fresh_process``,
``fresh_worker``; ``compile_worker`` for torch.compile's cache) and in a LibTorch C++ process
(``cpp_runner`` and its source under ``cpp/``)."""
