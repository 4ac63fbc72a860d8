"""What the notebooks show: tables and figures computed from the records and the reports' own numbers.

reference     Report 1's tables, MedMNIST v2's benchmark, Report 2's figures (DataFrames)
tables        every table, one function each: records in, DataFrame out (Report 1's layout beside its numbers, the
              study tables of the README, the M3DV folds, the datasets, confusion matrices)
studies       the study tables as a registry with titles and provenance; `python -m medlib results` (README)
reproduction  the notebooks' calls: committed records as styled tables with provenance, notes naming a command
styled        styling only: a reproducible Styler (fixed id, plain-text repr), the colours
layers        the networks measured layer by layer: Report 1's Figure 2, Report 2's DenseNet growth and size
curves        loss / AUC curves, ResNet-18 vs ResNet-50, diagnosis plots (matplotlib)
confusion     the confusion-matrix figure of a chosen run (counts, row-normalised)
gallery       samples per class, volume slices (matplotlib)
nodule3d      one nodule in 3D (plotly) and as slices with its mask, optionally with a saliency volume
heatmaps      Grad-CAM drawn over its images: 2D overlays, the randomised-weights check

The analysis they draw on (the trend test, Grad-CAM) is `medlib.analysis`; the notebook machinery (set-up,
execution, offline HTML) is `medlib.book`.
"""
