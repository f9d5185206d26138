"""`python -m ganaug.summary`: the headline numbers of the last run, from reports/metrics/*.json."""

from __future__ import annotations

import json

from ganaug import paths


def _load(name: str) -> dict | None:
    path = paths.METRICS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def summary_lines() -> list[str]:
    lines = []
    if real := _load("real-only"):
        lines.append(f"real-only classifier   test accuracy {real['test_accuracy']:.4f}  ({real['n_train']} real training images)")
    if gan := _load("gan"):
        floor = gan["real_test"]
        lines.append(f"GAN (step {gan['best_step']}/{gan['steps']})     FID {gan['fid']:.1f} (real test images: {floor['fid']:.1f})  "
                     f"KID {gan['kid']:.4f}  diversity {gan['diversity_ratio']:.2f}  label agreement {gan['label_agreement']:.2f} "
                     f"(real: {floor['label_agreement']:.2f})")
    if cas := _load("cas"):
        lines.append(f"synthetic only (CAS)   test accuracy {cas['test_accuracy']:.4f}  ({cas['n_train']} synthetic training images)")
    if proj := _load("projection"):
        lines.append(f"DAPPER projection      {proj['projected']} images, mean reconstruction MSE {proj['recon_mse_mean']:.4f}, "
                     f"pool of {proj['pool_size']}")
    return lines


if __name__ == "__main__":
    print("\n".join(summary_lines()) or "no metrics yet: run `make run`")
