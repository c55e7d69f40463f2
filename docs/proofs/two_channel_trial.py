"""A trial: a defect model that sees the routed photo alone (1 channel), or it and the noisy photo (2 channels).

``TRAIN`` and ``VAL`` hold ``<class>/`` folders of photos (a dataset's ``train/``, ``test/``; ``ok*`` are good).
Both arms train the same way on ``TRAIN``: a Gaussian-only augmentation (70% of the draws at sigma U(10, 50), the
autoencoder from sigma 25 up on the true sigma, as the shipped gate), 16 epochs, seed 0, one thread; the
threshold is chosen on 15% of ``TRAIN`` held out, each photo clean and at sigma 15/25/35/45. Then each photo of
``VAL`` is judged clean and at sigma 10-50, with the share right per class folder (``inspection synth
--kind-folders`` names them by defect kind). docs/results.md, "Where the Gaussian gap is".

Usage: python docs/proofs/two_channel_trial.py DENOISER TRAIN VAL CHANNELS OUT_JSON
"""

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from inspection.denoise import AutoencoderDenoiser
from inspection.models import create_model
from inspection.models.checkpoint import load_checkpoint

torch.set_num_threads(1)
if len(sys.argv) != 6 or sys.argv[4] not in ("1", "2"):
    sys.exit(__doc__.strip().splitlines()[-1])
DENOISER, TRAIN, VAL, CH, OUT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
EPOCHS = 16
MEAN, STD, SIZE, GATE = 0.386, 0.191, 128, 25.0
ae = AutoencoderDenoiser(load_checkpoint(DENOISER).model)


def load(root):
    files = sorted(Path(root).rglob("*.png"))
    ims = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]
    kinds = np.array([f.parent.name for f in files])
    return ims, kinds


def views(clean, sigmas, rng):
    """(routed, raw) per photo; sigma 0 = clean."""
    raw = [
        c if s == 0 else np.clip(np.rint(c + rng.normal(0, s, c.shape)), 0, 255).astype(np.uint8)
        for c, s in zip(clean, sigmas, strict=True)
    ]
    idx = [i for i, s in enumerate(sigmas) if s >= GATE]
    routed = list(raw)
    if idx:
        for i, d in zip(idx, ae.denoise_batch([raw[i] for i in idx]), strict=True):
            routed[i] = d
    return routed, raw


def tensor(routed, raw, rng=None):
    planes = [routed, raw][:CH]
    out = np.stack(
        [np.stack([cv2.resize(p, (SIZE, SIZE), interpolation=cv2.INTER_AREA) for p in pl]) for pl in planes],
        1,
    ).astype(np.float32)
    out = (out / 255.0 - MEAN) / STD
    if rng is not None:
        for i in range(len(out)):
            k = int(rng.integers(4))
            out[i] = np.rot90(out[i], k, axes=(1, 2))
            if rng.random() < 0.5:
                out[i] = out[i][:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(out))


def probs(model, clean, sigmas, rng):
    model.eval()
    ps = []
    with torch.no_grad():
        for s in range(0, len(clean), 64):
            r, w = views(clean[s : s + 64], sigmas[s : s + 64], rng)
            ps.append(torch.sigmoid(model(tensor(r, w))[:, 0]).numpy())
    return np.concatenate(ps)


def main():
    ims, kinds = load(TRAIN)
    labels = np.array([not k.startswith("ok") for k in kinds], np.float32)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ims))
    n_val = int(0.15 * len(ims))
    val, tr = order[:n_val], order[n_val:]
    torch.manual_seed(0)
    model = create_model("defect_cnn_small", in_chans=CH)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = EPOCHS * (len(tr) // 32)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    t0 = time.time()
    for ep in range(EPOCHS):
        model.train()
        perm = rng.permutation(tr)
        for b in range(len(tr) // 32):
            idx = perm[b * 32 : (b + 1) * 32]
            sig = [float(rng.uniform(10, 50)) if rng.random() < 0.7 else 0.0 for _ in idx]
            r, w = views([ims[i] for i in idx], sig, rng)
            loss = F.binary_cross_entropy_with_logits(
                model(tensor(r, w, rng))[:, 0], torch.from_numpy(labels[idx])
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {ep + 1} loss {loss.item():.3f} {time.time() - t0:.0f}s", flush=True)
    # threshold on the held-out train photos: each clean and at sigma 15/25/35/45
    vrng = np.random.default_rng(1)
    vc = [ims[i] for i in val]
    vp = np.concatenate([probs(model, vc, [s] * len(vc), vrng) for s in (0, 15, 25, 35, 45)])
    vl = np.tile(labels[val], 5)
    cands = np.unique(vp)
    accs = [np.mean((vp >= t) == vl) for t in cands]
    thr = float(cands[int(np.argmax(accs))])
    tims, tkinds = load(VAL)
    names = sorted(set(tkinds))
    result = {"threshold": thr, "by_sigma": {}}
    print("sigma " + " ".join(f"{n[-8:]:>8}" for n in names) + "  acc")
    for s in (0, 10, 20, 30, 40, 50):
        p = probs(model, tims, [s] * len(tims), np.random.default_rng(s))
        pred = p >= thr
        truth = np.array([not k.startswith("ok") for k in tkinds])
        row = {n: float(np.mean(pred[tkinds == n] == truth[tkinds == n])) for n in names}
        row["accuracy"] = float(np.mean(pred == truth))
        result["by_sigma"][s] = row
        print(f"{s:5d} " + " ".join(f"{row[n]:8.3f}" for n in names) + f"  {row['accuracy']:.3f}", flush=True)
    Path(OUT).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
