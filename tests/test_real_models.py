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
            "passed*trace*ok ok*MB*test_user.py::test_resnet18[trace]",
            "passed*script*ok ok*MB*test_user.py::test_resnet18[script]",
            "passed*trace*ok ok*test_user.py::test_mobilenet_v3_small[trace]",
            "passed*script*ok ok*test_user.py::test_mobilenet_v3_small[script]",
            "passed*trace*ok ok*test_user.py::test_bert",
            "5 check(s): 5 passed, 0 failed*",
        ],
    )


def test_detection_model_trace_gives_a_short_hazard_report_not_a_flood(suite):
    result = suite(
        """
        import torch
        import torchvision

        class Detector(torch.nn.Module):
            '''The usual wrapper that makes a torchvision detector traceable.'''

            def __init__(self):
                super().__init__()
                self.model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
                    weights=None, weights_backbone=None, num_classes=5
                )

            def forward(self, images):
                detections = self.model(list(images))[0]
                return detections["boxes"], detections["scores"], detections["labels"]

        def test_detector(torchscript):
            torch.manual_seed(0)
            images = [torch.rand(1, 3, 160, 160), torch.rand(1, 3, 160, 160)]
            report = torchscript.check(Detector().eval(), images, roundtrip=False)
            library = [h for h in report.control_flow.hazards if not h.in_user_code]
            assert sum(h.count for h in library) > 10  # torchvision really is hazardous
        """
    )
    result.assert_outcomes(passed=1, warnings=1)
    expect_lines(
        result,
        [
            "*TraceHazardWarning: the trace of Detector turned tensors into Python values at "
            "test_user.py:14 (iteration over a tensor*",
        ],
    )
    expect_lines(
        result,
        [
            "control flow:",
            "  test_user.py::test_detector (trace):",
            "    hazards in your code: test_user.py:14 iteration over a tensor*",
            "    hazards in libraries (not your code): *torchvision * at * place(s)",
        ],
    )
    assert "TracerWarning" not in result.stdout.str()


def test_resnet18_and_bert_pass_export_and_modeloutput_fails_the_deployment_claim(suite):
    source = """
        import pytest
        import torch
        import torchvision
        from transformers import BertConfig, BertModel

        CONFIG = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=64)

        def tokens():
            ids = torch.randint(0, 100, (2, 12), generator=torch.Generator().manual_seed(0))
            mask = torch.ones_like(ids)
            mask[1, 8:] = 0
            return [{"input_ids": ids, "attention_mask": mask},
                    {"input_ids": ids[:1, :7], "attention_mask": mask[:1, :7]}]

        class TupleBert(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.bert = BertModel(CONFIG)

            def forward(self, input_ids, attention_mask):
                return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                                 return_dict=False)

        @pytest.mark.torchscript(mode="export",
                                 inputs=[torch.randn(1, 3, 64, 64), torch.randn(3, 3, 64, 64)])
        def test_resnet18():
            return torchvision.models.resnet18(weights=None).eval()

        @pytest.mark.torchscript(mode="export", inputs=tokens)
        def test_bert_tuple():
            return TupleBert().eval()

        @pytest.mark.torchscript(mode="export", inputs=tokens)
        def test_bert_model_output():
            return BertModel(CONFIG).eval()
        """
    result = suite(source)
    result.assert_outcomes(passed=2, failed=1)
    expect_lines(
        result,
        [
            "torchscript check of BertModel failed at fresh-process (mode='export', device=cpu)",
            "*export.pt2 could not be loaded and run in a fresh Python process that never "
            "imported your code:",
            "  RuntimeError: We ran into an error when deserializing the saved file.*",
            "  NotImplementedError: Deserializing transformers.modeling_outputs.*in pytree is "
            "not registered.",
            "hint: the .pt2 stores its inputs or outputs as a Python class registered as a "
            "pytree node*(transformers: pass return_dict=False to forward*; or, where your "
            "deployment imports transformers.modeling_outputs (which registers *), declare it: "
            "--ts-deploy-imports=transformers.modeling_outputs (ini ts_deploy_imports)",
        ],
    )
    expect_lines(result, ["passed*export*ok ok*MB*test_user.py::test_resnet18"])
    expect_lines(result, ["passed*export*ok ok*test_user.py::test_bert_tuple"])
    # A Python deployment that imports transformers' outputs loads the ModelOutput .pt2
    declared = suite(
        source, "--ts-deploy-imports=transformers.modeling_outputs", "-k", "model_output"
    )
    declared.assert_outcomes(passed=1)
    expect_lines(declared, ["passed*export*ok ok*test_user.py::test_bert_model_output"])
