#!/usr/bin/env python3
"""PyTorch peer of bench/listops.ts: the Gumbel Tree-LSTM of Choi, Yoo & Lee (AAAI 2018) on ListOps, written the
way the authors' reference implements it: a leaf LSTMCell stepped over time (masked beyond each row's length), then
at every level ALL adjacent pairs composed by one Tree-LSTM layer (O(T^2) compositions per row), a straight-through
Gumbel selection of one pair per row from a learned query, the cumulative-sum merge, and an MLP classifier.

Input: a JSON file written by bench/listops.ts (the same token ids, labels and length-bucketed batches of 16 that
gapgrad trains on). Output: one JSON line with examples/s per (hidden, threads).

  python3 bench/peers/torch_listops.py --batches bench/out/listops_batches.json [--hidden 300,64] [--threads 1,2]
                                       [--steps 12]
Exits 3 (with a message) when torch is not installed.
"""
import argparse
import json
import math
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # the bench reports this as a skip
    print(f"torch not installed: {e}", file=sys.stderr)
    sys.exit(3)


class TreeLSTMLayer(nn.Module):
    """Composes every adjacent pair: [h_l; h_r] -> (h, c) with gates i, f_l, f_r, u, o (forget bias +1)."""

    def __init__(self, hidden):
        super().__init__()
        self.comp = nn.Linear(2 * hidden, 5 * hidden)

    def forward(self, left, right):
        hl, cl = left
        hr, cr = right
        z = self.comp(torch.cat([hl, hr], dim=-1))
        i, fl, fr, u, o = z.chunk(5, dim=-1)
        c = cl * torch.sigmoid(fl + 1) + cr * torch.sigmoid(fr + 1) + torch.tanh(u) * torch.sigmoid(i)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


def st_gumbel(logits, mask, tau=1.0):
    """Straight-through Gumbel-softmax over the unmasked entries: one-hot forward, soft gradient."""
    u = torch.rand_like(logits).clamp_(1e-10, 1 - 1e-10)
    g = -torch.log(-torch.log(u))
    y = (logits + g) / tau
    y = y.masked_fill(~mask, float("-inf"))
    soft = F.softmax(y, dim=-1)
    hard = F.one_hot(soft.argmax(-1), logits.size(-1)).to(soft.dtype)
    return (hard - soft).detach() + soft


class GumbelTreeLSTM(nn.Module):
    def __init__(self, vocab, hidden, dropout):
        super().__init__()
        self.hidden = hidden
        self.emb = nn.Embedding(vocab, hidden)
        self.leaf = nn.LSTMCell(hidden, hidden)
        self.tree = TreeLSTMLayer(hidden)
        self.query = nn.Parameter(torch.randn(hidden) * 0.01)
        self.clf1 = nn.Linear(hidden, hidden)
        self.clf2 = nn.Linear(hidden, 10)
        self.drop = nn.Dropout(dropout)

    def forward(self, ids, lengths):
        B, T = ids.shape
        x = self.emb(ids)
        h = x.new_zeros(B, self.hidden)
        c = x.new_zeros(B, self.hidden)
        hs, cs = [], []
        for t in range(T):
            hn, cn = self.leaf(x[:, t], (h, c))
            m = (lengths > t).unsqueeze(1).to(x.dtype)
            h = m * hn + (1 - m) * h
            c = m * cn + (1 - m) * c
            hs.append(h)
            cs.append(c)
        H = torch.stack(hs, 1)
        C = torch.stack(cs, 1)
        for i in range(T - 1):
            left, right = (H[:, :-1], C[:, :-1]), (H[:, 1:], C[:, 1:])
            nh, nc = self.tree(left, right)  # every adjacent pair, every level
            n = nh.size(1)
            live = (lengths > i + 1).unsqueeze(1).unsqueeze(2).to(x.dtype)  # rows still merging
            if n == 1:
                sel = x.new_ones(B, 1)
            else:
                valid = torch.arange(n, device=ids.device).unsqueeze(0) < (lengths - i - 1).clamp(min=1).unsqueeze(1)
                scores = (nh * self.query).sum(-1) / math.sqrt(self.hidden)
                sel = st_gumbel(scores, valid)
            cum = sel.cumsum(1)
            s3, l3, r3 = sel.unsqueeze(2), (1 - cum).unsqueeze(2), (cum - sel).unsqueeze(2)
            mh = s3 * nh + l3 * left[0] + r3 * right[0]
            mc = s3 * nc + l3 * left[1] + r3 * right[1]
            H = live * mh + (1 - live) * left[0]  # finished rows drop their last (padding) slot
            C = live * mc + (1 - live) * left[1]
        root = H[:, 0]
        return self.clf2(self.drop(F.relu(self.clf1(self.drop(root)))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", required=True)
    ap.add_argument("--hidden", default="300,64")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--steps", type=int, default=12)
    a = ap.parse_args()
    with open(a.batches) as f:
        d = json.load(f)
    batches = []
    for b in d["batches"]:
        L = max(len(s) for s in b["ids"])
        ids = torch.zeros(len(b["ids"]), L, dtype=torch.long)
        for r, s in enumerate(b["ids"]):
            ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
        batches.append((ids, torch.tensor([len(s) for s in b["ids"]]), torch.tensor(b["labels"], dtype=torch.long)))
    rows = []
    for H in [int(h) for h in a.hidden.split(",")]:
        for th in [int(t) for t in a.threads.split(",")]:
            torch.set_num_threads(th)
            torch.manual_seed(1)
            model = GumbelTreeLSTM(d["vocab"], H, 0.5 if H == 300 else 0.1)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3 if H == 300 else 2e-3)

            def step(k):
                ids, lengths, labels = batches[k % len(batches)]
                loss = F.cross_entropy(model(ids, lengths), labels)
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                return ids.size(0)

            for k in range(2):
                step(k)
            t0 = time.perf_counter()
            n = 0
            for k in range(a.steps):
                n += step(2 + k)
            s = time.perf_counter() - t0
            rows.append({"hidden": H, "threads": th, "exS": round(n / s, 2), "examples": n})
            print(f"  torch H={H} {th}T: {n / s:.1f} ex/s", file=sys.stderr)
    print(json.dumps({"torch": torch.__version__, "python": sys.version.split()[0], "rows": rows}))


if __name__ == "__main__":
    main()
