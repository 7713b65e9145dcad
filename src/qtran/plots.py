"""Figures drawn from run files only: learning curves with confidence intervals, Q heatmaps.

Every figure is written as PNG and SVG, with a caption file (`<name>.txt`) that states what
is plotted and how the interval was computed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# One colour per algorithm, the same in every figure.
ALGO_COLORS = {
    "qtran-base": "#1f77b4",
    "qtran-alt": "#d62728",
    "vdn": "#2ca02c",
    "qmix": "#ff7f0e",
    "iql": "#7f7f7f",
    "qplex": "#9467bd",
    "ow-qmix": "#8c564b",
    "cw-qmix": "#e377c2",
}
ALGO_LABELS = {"qtran-base": "QTRAN-base", "qtran-alt": "QTRAN-alt", "vdn": "VDN", "qmix": "QMIX", "iql": "IQL",
               "qplex": "QPLEX", "ow-qmix": "OW-QMIX", "cw-qmix": "CW-QMIX"}
INTERVAL_METHOD = "95% Student-t confidence interval of the mean over seeds"


def mean_ci(values, confidence: float = 0.95, axis: int = -1):
    """Mean and half-width of the Student-t confidence interval over `axis` (NaN half-width for n < 2)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    n = values.shape[axis]
    mean = values.mean(axis=axis)
    if n < 2:
        return mean, np.full_like(mean, np.nan)
    sem = values.std(axis=axis, ddof=1) / np.sqrt(n)
    return mean, sem * stats.t.ppf(0.5 + confidence / 2, n - 1)


def format_mean_ci(values, digits: int = 3, count: bool = False) -> str:
    """"mean +- half-width" of `values` (one number per run or episode); a single value is
    printed alone, "(one value, no interval)", since one sample has no spread to estimate.
    `count` appends "(n=...)"."""
    values = np.asarray(values, dtype=float).ravel()
    mean, half = mean_ci(values)
    if len(values) < 2:
        return f"{float(mean):.{digits}f} (one value, no interval)"
    return f"{float(mean):.{digits}f} +- {float(half):.{digits}f}" + (f" (n={len(values)})" if count else "")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


SVG_HASH_SALT = "qtran"


def save(fig, stem: Path, caption: str) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    # name + extension by hand: with_suffix would eat the ".5" of a stem like "fig4_n2_p0.5"
    png, svg, txt = (stem.parent / f"{stem.name}.{ext}" for ext in ("png", "svg", "txt"))
    import matplotlib

    # The same runs give the same bytes, so that redrawing committed results changes no file:
    # no date in the SVG metadata (the PNG has none), and SVG element ids from a fixed salt
    # (matplotlib's default salt is random per figure).
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASH_SALT}):
        fig.savefig(png, dpi=130, bbox_inches="tight")
        fig.savefig(svg, bbox_inches="tight", metadata={"Date": None})
    txt.write_text(caption.strip() + "\n")
    _pyplot().close(fig)
    return [png, svg, txt]


def plot_curves(curves: dict[str, dict], stem: Path, title: str, ylabel: str = "greedy evaluation reward",
                references: dict[str, float] | None = None, caption: str = "", missing=(),
                note: str = "") -> list[Path]:
    """curves: {algo: {"steps": [E], "returns": [E, seeds]}} -> mean line and shaded interval.

    `missing` algorithms get a "not run" legend entry (and, with no curve at all, the axes say
    so), so that an absent run is never mistaken for a forgotten one. `note` is printed under
    the axes, for what must travel with the image (a budget)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    _draw_curves(ax, curves)
    for algo in missing:
        ax.plot([], [], color=ALGO_COLORS.get(algo), ls=":", label=f"{ALGO_LABELS.get(algo, algo)}: not run")
    if missing and not curves:
        ax.text(0.5, 0.5, "not run", transform=ax.transAxes, ha="center", va="center", fontsize=14, color="0.4")
        ax.set_xticks([])
        ax.set_yticks([])
    if note:
        ax.text(0.0, -0.16, note, transform=ax.transAxes, ha="left", va="top", fontsize=7, wrap=True)
    _draw_references(ax, references)
    ax.set_title(title)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    text = f"{title}. Lines: mean over seeds; shaded: {INTERVAL_METHOD}. {caption}"
    return save(fig, stem, text)


def _draw_curves(ax, curves: dict[str, dict]) -> None:
    """Mean line and shaded interval per curve. A curve's optional "algo" picks its colour
    (default: its key) and "label" its legend text (default: the algorithm's name)."""
    for name, curve in curves.items():
        algo = curve.get("algo", name)
        steps = np.asarray(curve["steps"])
        returns = np.asarray(curve["returns"], dtype=float)
        mean, half = mean_ci(returns, axis=1)
        color = ALGO_COLORS.get(algo)
        label = curve.get("label", ALGO_LABELS.get(algo, algo))
        seeds = returns.shape[1]
        ax.plot(steps, mean, color=color, label=f"{label} ({seeds} seed{'s' if seeds != 1 else ''})", lw=1.8)
        if np.all(np.isfinite(half)):
            ax.fill_between(steps, mean - half, mean + half, color=color, alpha=0.2, lw=0)


def _draw_references(ax, references: dict[str, float] | None) -> None:
    for i, (name, value) in enumerate((references or {}).items()):
        ax.axhline(value, color="black", ls=["--", ":", "-."][i % 3], lw=1.0, label=f"{name} ({value:.2f})")


def plot_curve_panels(panels: list[dict], stem: Path, title: str, ylabel: str = "greedy evaluation reward",
                      caption: str = "") -> list[Path]:
    """One axes per panel ({"title", "curves", "references"}, curves as in plot_curves), each
    with its own y scale and reference lines: panels are environments whose rewards are not
    comparable, so nothing is averaged or drawn across them."""
    plt = _pyplot()
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 3.6 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(panels):
            ax.axis("off")
            continue
        panel = panels[k]
        _draw_curves(ax, panel["curves"])
        _draw_references(ax, panel.get("references"))
        ax.set_title(panel["title"], fontsize=9)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    names = "; ".join(f"panel {k + 1}: {p['title']}" for k, p in enumerate(panels))
    text = f"{title}. {names}. Lines: mean over seeds; shaded: {INTERVAL_METHOD}. {caption}"
    return save(fig, stem, text)


def plot_heatmaps(panels: list[list[tuple[str, np.ndarray]]], stem: Path, title: str,
                  caption: str = "", xlabel: str = "agent 1's action", ylabel: str = "agent 2's action") -> list[Path]:
    """A grid of heatmaps (rows of (subtitle, table[u_1, u_2])) on one shared colour scale.

    As in the paper's Figure 2, agent 1's action is on the x-axis and agent 2's on the y-axis.
    """
    plt = _pyplot()
    rows, cols = len(panels), max(len(r) for r in panels)
    tables = [t for row in panels for _, t in row]
    vmax = max(float(np.nanmax(np.abs(t))) for t in tables)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.9 * rows), squeeze=False)
    image = None
    for r, row in enumerate(panels):
        for c in range(cols):
            ax = axes[r][c]
            if c >= len(row):
                ax.axis("off")
                continue
            name, table = row[c]
            image = ax.imshow(np.asarray(table).T, cmap="RdBu_r", vmin=-vmax, vmax=vmax, origin="lower")
            ax.set_title(name, fontsize=9)
            ax.set_xlabel(xlabel, fontsize=8)
            ax.set_ylabel(ylabel, fontsize=8)
    fig.suptitle(title)
    fig.colorbar(image, ax=axes, shrink=0.8, label="value")
    text = f"{title}. Shared colour scale [-{vmax:.2f}, {vmax:.2f}]; tables are means over seeds. {caption}"
    return save(fig, stem, text)
