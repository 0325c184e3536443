"""A sentence classifier on a small BERT encoder built from a config (no hub download)."""

import torch
from transformers import BertConfig, BertModel


def small_bert_config() -> BertConfig:
    return BertConfig(
        vocab_size=1000,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=128,
    )


class SentenceClassifier(torch.nn.Module):
    """BERT's pooled output through a linear head; returns logits and the token embeddings."""

    def __init__(self, num_labels: int = 3) -> None:
        super().__init__()
        self.encoder = BertModel(small_bert_config())
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        encoded = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        return {"logits": self.head(encoded.pooler_output), "tokens": encoded.last_hidden_state}
