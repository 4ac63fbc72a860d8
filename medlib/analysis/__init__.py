"""What medlib measures about trained networks and their curves, above the results and below the report's pictures.

diagnose  Report 2's five train/val-loss cases, decided by a trend test on each run's history
saliency  Grad-CAM for the 2D ResNets and the 3D networks (maps as tensors; drawn by report.heatmaps, nodule3d)
"""
