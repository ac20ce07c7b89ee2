"""Convolutional recurrent units for the progressive codec: LSTM and a GRU with a residual skip.

Both take an input ``x`` of shape (N, C_in, H, W) and a state from the previous iteration, and
return the hidden output of shape (N, C_hidden, H / stride, W / stride) plus the new state. The
input path is a (strided) convolution; the hidden path is a convolution of the previous hidden
state at the output resolution, as in Toderici et al. 2017. A state of ``None`` means zeros.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM: gates i, f, o, g from conv(x) + conv(h); state (h, c)."""

    def __init__(self, c_in: int, c_hidden: int, stride: int = 1, k_in: int = 3, k_hidden: int = 1):
        super().__init__()
        self.c_hidden = c_hidden
        self.stride = stride
        self.conv_x = nn.Conv2d(c_in, 4 * c_hidden, k_in, stride, k_in // 2)
        self.conv_h = nn.Conv2d(c_hidden, 4 * c_hidden, k_hidden, 1, k_hidden // 2, bias=False)
        with torch.no_grad():  # forget gate starts open
            self.conv_x.bias[c_hidden : 2 * c_hidden].fill_(1.0)

    def forward(self, x: Tensor, state: State | None) -> tuple[Tensor, State]:
        gx = self.conv_x(x)
        if state is None:
            h = torch.zeros_like(gx[:, : self.c_hidden])
            c = torch.zeros_like(h)
        else:
            h, c = state
        i, f, o, g = (gx + self.conv_h(h)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class ConvResGRUCell(nn.Module):
    """Convolutional GRU whose output adds a 1x1 projection of its input (a residual skip).

    h' = (1 - z) * h + z * tanh(W x + U (r * h)); output = h' + P x. The state is (h',).
    """

    def __init__(self, c_in: int, c_hidden: int, stride: int = 1, k_in: int = 3, k_hidden: int = 1):
        super().__init__()
        self.c_hidden = c_hidden
        self.conv_x = nn.Conv2d(c_in, 3 * c_hidden, k_in, stride, k_in // 2)
        self.conv_zr = nn.Conv2d(c_hidden, 2 * c_hidden, k_hidden, 1, k_hidden // 2, bias=False)
        self.conv_n = nn.Conv2d(c_hidden, c_hidden, k_hidden, 1, k_hidden // 2, bias=False)
        self.skip = nn.Conv2d(c_in, c_hidden, 1, stride, bias=False)

    def forward(self, x: Tensor, state: State | None) -> tuple[Tensor, State]:
        gx = self.conv_x(x)
        xz, xr, xn = gx.chunk(3, dim=1)
        h = torch.zeros_like(xz) if state is None else state[0]
        hz, hr = self.conv_zr(h).chunk(2, dim=1)
        z = torch.sigmoid(xz + hz)
        r = torch.sigmoid(xr + hr)
        n = torch.tanh(xn + self.conv_n(r * h))
        h = (1 - z) * h + z * n
        return h + self.skip(x), (h,)


CELLS = {"lstm": ConvLSTMCell, "gru": ConvResGRUCell}


def make_cell(kind: str, c_in: int, c_hidden: int, **kw) -> nn.Module:
    """A recurrent cell by name: ``lstm`` or ``gru`` (residual GRU)."""
    try:
        return CELLS[kind](c_in, c_hidden, **kw)
    except KeyError:
        raise ValueError(f"unknown recurrent unit {kind!r}; use one of {sorted(CELLS)}") from None
