"""The solver's progress bar (tqdm; switched by ``progress``)."""
from __future__ import annotations


def update_bar(bar, solver, active):
    """Progress: accepted iterations of the furthest path (of max_iter), and how many paths
    are still active with their mean energy (set without forcing a redraw every round)."""
    done = int(solver.iterations.max())
    if done > bar.n:
        bar.update(done - bar.n)
    bar.set_postfix(active=int(active.size), energy=f"{float(solver.energy[active].mean()):.4g}", refresh=False)


def progress_bar(progress, total, method):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a declared dependency; a broken install only loses the bar
        return None
    return tqdm(total=total, desc=f"interpolate ({method})", unit="it", leave=False)
