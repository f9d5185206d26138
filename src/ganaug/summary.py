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
        lines.append(
            f"scorer                 test accuracy {real['test_accuracy']:.4f}  (real only, {real['n_train']} "
            f"training images, {real.get('epochs', '?')} epochs; the table's real-only row trains at the "
            "experiments' budget)"
        )
    if gan := _load("gan"):
        floor = gan["real_test"]
        lines.append(
            f"GAN (step {gan['best_step']}/{gan['steps']})     FID {gan['fid']:.1f} (real test images: "
            f"{floor['fid']:.1f})  "
            f"KID {gan['kid']:.4f}  diversity {gan['diversity_ratio']:.2f}  label agreement "
            f"{gan['label_agreement']:.2f} "
            f"(real: {floor['label_agreement']:.2f})"
        )
    if (proj := _load("projection")) and "skipped" in proj:
        lines.append(f"DAPPER projection      not run ({proj['skipped']})")
    elif proj:
        lines.append(
            f"DAPPER projection      {proj['projected']} images, mean reconstruction MSE {proj['recon_mse_mean']:.4f}, "
            f"pool of {proj['pool_size']}"
        )
    if (rl := _load("rl")) and "skipped" in rl:
        lines.append(f"RL sampler             not trained ({rl['skipped']})")
    elif rl:
        lines.append(
            f"RL sampler             keeps {rl['kept']} of {rl['pool_size']} pool images on its own "
            f"= {rl['chosen_ratio']:.2f}x the real set"
        )
    if head := _load("summary"):
        if "best_vs_real_only" in head and "real_only" in head:
            best, vs = head["best_augmented"], head["best_vs_real_only"]
            ci = "" if vs["ci"][0] is None else f", 95% CI [{100 * vs['ci'][0]:+.2f}, {100 * vs['ci'][1]:+.2f}]"
            lines.append(
                f"highest augmented mean {best['row']}: {best['accuracy']:.4f} vs real-only {head['real_only']:.4f} "
                f"({100 * vs['diff']:+.2f} points{ci}, {vs['n']} seeds): {vs['verdict']}"
            )
    details = paths.REPORT / "summary.json"
    if details.is_file():
        comparisons = json.loads(details.read_text())["comparisons"]
        clear = [c for c in comparisons if c["verdict"] in ("better", "worse")]
        lines.append(
            "verdicts (Holm-adjusted): "
            + (
                "; ".join(f"{c['row']} vs {c['reference']}: {c['verdict']}" for c in clear)
                or "no clear difference anywhere in the table"
            )
        )
    table = paths.REPORT / "summary.md"
    if table.is_file():
        lines += ["", table.read_text().rstrip()]
    return lines


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--timings", action="store_true", help="where the last `make run` spent its time, per stage family"
    )
    args = parser.parse_args(argv)
    if args.timings:
        from ganaug.timing import timing_table

        print("\n".join(timing_table()))
        return 0
    print("\n".join(summary_lines()) or "no metrics yet: run `make run`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
