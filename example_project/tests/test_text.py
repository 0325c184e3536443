import torch

from example_models.text import SentenceClassifier


def sentences():
    """A padded batch and a single short sentence: different batch sizes, as in production."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 1000, (3, 24), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 16:] = 0
    mask[2, 9:] = 0
    return [
        {"input_ids": ids, "attention_mask": mask},
        {"input_ids": ids[2:], "attention_mask": mask[2:]},
    ]


def test_sentence_classifier_traces(torchscript):
    report = torchscript.check(SentenceClassifier().eval(), sentences())
    assert report.parity[1].ok
