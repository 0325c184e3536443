"""Models this project deploys as TorchScript."""
