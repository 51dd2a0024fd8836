"""A small, deterministic demo model for quick starts and end-to-end tests."""

from __future__ import annotations

from pathlib import Path

DEMO_FILENAME = "demo-classifier.skops"


def build_demo_model(dest_dir: Path) -> Path:
    """Train a 5-feature binary classifier and save it as ``.skops`` in ``dest_dir``.

    Trained on a plain ndarray (no feature names), so raw rows such as
    ``[[1, 2, 3, 4, 5]]`` predict without warnings. Fixed seeds and a
    deterministic solver make every build predict identically. Returns the path.
    """
    # Imported here: a platform that already has its demo model never trains it, and
    # scikit-learn is the slowest library to import.
    import skops.io as sio
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = make_classification(
        n_samples=200,
        n_features=5,
        n_informative=3,
        n_redundant=1,
        random_state=42,
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(random_state=42))
    model.fit(x, y)
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / DEMO_FILENAME
    sio.dump(model, path)
    return path
