"""Real models pass end to end on CPU: torchvision classifiers and a small transformers BERT."""

from conftest import expect_lines


def test_torchvision_and_transformers_models_pass_trace_and_script(suite):
    result = suite(
        """
        import pytest
        import torch
        import torchvision
        from transformers import BertConfig, BertModel

        IMAGES = [torch.randn(1, 3, 64, 64), torch.randn(2, 3, 64, 64)]

        @pytest.mark.torchscript(mode=["trace", "script"], inputs=IMAGES)
        def test_resnet18():
            return torchvision.models.resnet18(weights=None).eval()

        @pytest.mark.torchscript(mode=["trace", "script"], inputs=IMAGES)
        def test_mobilenet_v3_small():
            return torchvision.models.mobilenet_v3_small(weights=None).eval()

        def tokens():
            ids = torch.randint(0, 100, (2, 12), generator=torch.Generator().manual_seed(0))
            mask = torch.ones_like(ids)
            mask[1, 8:] = 0
            return [{"input_ids": ids, "attention_mask": mask},
                    {"input_ids": ids[:1], "attention_mask": mask[:1]}]

        @pytest.mark.torchscript(mode="trace", inputs=tokens)
        def test_bert():
            config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=64)
            return BertModel(config).eval()
        """,
        "-v",
    )
    result.assert_outcomes(passed=5)
    expect_lines(
        result,
        [
            "passed*trace*cpu*reload ok, fresh ok*MB*test_user.py::test_resnet18[trace]",
            "passed*script*cpu*reload ok, fresh ok*MB*test_user.py::test_resnet18[script]",
            "passed*trace*cpu*reload ok, fresh ok*test_user.py::test_mobilenet_v3_small[trace]",
            "passed*script*cpu*reload ok, fresh ok*test_user.py::test_mobilenet_v3_small[script]",
            "passed*trace*cpu*reload ok, fresh ok*test_user.py::test_bert",
            "5 check(s): 5 passed, 0 failed*",
        ],
    )
