"""MedMNIST's task names, in a leaf module: data, metrics, ops and the engine all test against them."""

BINARY = "binary-class"
MULTICLASS = "multi-class"
ORDINAL = "ordinal-regression"
MULTILABEL = "multi-label, binary-class"
TASKS = (BINARY, MULTICLASS, ORDINAL, MULTILABEL)
