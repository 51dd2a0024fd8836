"""The platform's allow-list for ``.skops`` uploads.

skops refuses to load any type it does not trust by default; this module names
the extra types the platform accepts, and the only scikit-learn types (model
families and their internals) that may appear anywhere in an uploaded file.

The extra types are ones skops deliberately leaves untrusted because their
arrays are indexed by compiled code without bounds checks (a crafted
``sklearn.tree._tree.Tree`` segfaults ``predict``). The platform accepts them
only because ``sklearn_integrity.check_estimator`` verifies those arrays before
the model is ever run; adding a type here without such a check is unsafe.
"""

from __future__ import annotations

# Untrusted by skops, trusted here; each is checked or rebuilt after loading.
EXTRA_TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        # Neighbour indexes are discarded and rebuilt from the training data.
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        "sklearn.metrics._dist_metrics.ChebyshevDistance64",
        # The type object itself (e.g. an imputer's fit dtype), not arbitrary data.
        "numpy.dtype",
    }
)

_ESTIMATORS = {
    "linear_model._logistic": ["LogisticRegression"],
    "linear_model._base": ["LinearRegression"],
    "linear_model._ridge": ["Ridge", "RidgeClassifier"],
    "linear_model._coordinate_descent": ["Lasso", "ElasticNet"],
    "linear_model._stochastic_gradient": ["SGDClassifier", "SGDRegressor"],
    "tree._classes": [
        "DecisionTreeClassifier",
        "DecisionTreeRegressor",
        "ExtraTreeClassifier",
        "ExtraTreeRegressor",
    ],
    "ensemble._forest": [
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
    ],
    "ensemble._gb": ["GradientBoostingClassifier", "GradientBoostingRegressor"],
    "ensemble._hist_gradient_boosting.gradient_boosting": [
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
    ],
    "svm._classes": ["SVC", "SVR", "LinearSVC", "LinearSVR"],
    "neighbors._classification": ["KNeighborsClassifier"],
    "neighbors._regression": ["KNeighborsRegressor"],
    "naive_bayes": ["GaussianNB", "BernoulliNB", "MultinomialNB", "ComplementNB"],
    "pipeline": ["Pipeline"],
    "compose._column_transformer": ["ColumnTransformer"],
    "preprocessing._data": ["StandardScaler", "MinMaxScaler", "RobustScaler"],
    "preprocessing._encoders": ["OneHotEncoder"],
    "preprocessing._polynomial": ["PolynomialFeatures"],
    "impute._base": ["SimpleImputer"],
    # Internals the families above store when fitted.
    "dummy": ["DummyClassifier", "DummyRegressor"],
    "preprocessing._label": ["LabelEncoder", "LabelBinarizer"],
    "ensemble._hist_gradient_boosting.binning": ["_BinMapper"],
    "_loss.link": [
        "IdentityLink",
        "Interval",
        "LogitLink",
        "LogLink",
        "HalfLogitLink",
        "MultinomialLogit",
    ],
    "_loss.loss": [
        "HalfSquaredError",
        "AbsoluteError",
        "PinballLoss",
        "HuberLoss",
        "HalfPoissonLoss",
        "HalfGammaLoss",
        "HalfBinomialLoss",
        "HalfMultinomialLoss",
        "ExponentialLoss",
    ],
    "_loss._loss": [
        "CyHalfSquaredError",
        "CyAbsoluteError",
        "CyPinballLoss",
        "CyHuberLoss",
        "CyHalfPoissonLoss",
        "CyHalfGammaLoss",
        "CyHalfBinomialLoss",
        "CyHalfMultinomialLoss",
        "CyExponentialLoss",
    ],
    "linear_model._sgd_fast": [
        "Hinge",
        "ModifiedHuber",
        "SquaredHinge",
        "Log",
        "SquaredLoss",
        "Huber",
        "EpsilonInsensitive",
        "SquaredEpsilonInsensitive",
    ],
}

# Every ``sklearn.*`` type an uploaded file may contain, fully qualified.
SKLEARN_TYPES: frozenset[str] = frozenset(
    f"sklearn.{module}.{name}" for module, names in _ESTIMATORS.items() for name in names
) | frozenset(name for name in EXTRA_TRUSTED_TYPES if name.startswith("sklearn."))


def not_allowed(untrusted: list[str]) -> list[str]:
    """The entries of skops' ``get_untrusted_types`` the platform does not accept."""
    return sorted(t for t in untrusted if t not in EXTRA_TRUSTED_TYPES)


def unsupported_sklearn_types(type_names: set[str]) -> list[str]:
    """The ``sklearn.*`` types in a file that are not on the platform's list."""
    return sorted(t for t in type_names if t.startswith("sklearn.") and t not in SKLEARN_TYPES)
