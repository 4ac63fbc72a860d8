"""What the notebooks show, computed from run folders and the reports' own numbers.

reference  Report 1's tables, MedMNIST v2's benchmark, Report 2's figures (DataFrames)
studies    the reproduction's study tables beside those numbers (`python -m medlib results`, the README tables)
tables     Report 1's layout from run folders beside those numbers; CV and ensemble tables (styled)
curves     loss / AUC curves, ResNet-18 vs ResNet-50, diagnosis plots (matplotlib)
diagnose   Report 2's five train/val-loss cases, decided by a trend test
layers     Report 1's Figure 2 (layer table, parameters, FLOPs) measured from the modules
gallery    samples per class, volume slices (matplotlib)
nodule3d   one nodule in 3D (plotly) and as slices with its mask, optionally with a saliency volume
saliency   Grad-CAM for the 2D ResNets and the 3D networks; 2D overlays, 3D heat volumes
notebook   renderer set-up and the provenance line at the top of each notebook
build      `python -m medlib report`: execute the notebooks into an offline HTML report
offline    one notebook as an HTML page that needs no network (maths as MathML, no CDN scripts)
"""
