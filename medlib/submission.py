"""`python -m medlib predict`: the course's submission CSV (id,Predicted) for every candidateN.npz in a folder."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import atomic
from .config import check_device
from .data.m3dv import list_candidates, load_m3dv, read_labels
from .engine.checkpoint import load_model
from .engine.device import resolve_device
from .engine.loop import predict
from .ensemble import average
from .errors import MedlibError
from .metrics import evaluate


def predict_folder(checkpoints, input_dir, out_csv=None, labels=None, weights=None, device="auto") -> pd.DataFrame:
    """Crop and mask as each checkpoint was trained, average P(class 1), optionally write the CSV."""
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise MedlibError(f"--input {input_dir} is not a folder of candidateN.npz files.")
    if out_csv is not None and (not str(out_csv).strip() or Path(out_csv).is_dir()):
        raise MedlibError(f"--out {str(out_csv)!r} is {'a folder' if str(out_csv).strip() else 'empty'}; pass the CSV "
                          "file to write, e.g. --out submission.csv.")
    table = read_labels(labels) if labels is not None else None  # a bad labels file fails before anything is written
    names = list_candidates(input_dir)
    dev = resolve_device(check_device(device))
    probs = []
    for path in checkpoints:
        net, cfg, meta = load_model(path)
        if meta.dims != 3 or cfg.dataset != "m3dv":
            raise MedlibError(f"{path} was trained on {cfg.dataset}, not M3DV; predict needs an M3DV checkpoint.")
        ds = load_m3dv(input_dir, labels=False, crop=cfg.crop, mask=cfg.mask, dilate=cfg.dilate, ids=names, cache=False)
        probs.append(predict(net.to(dev), ds["all"].X, dev, meta.task, cfg.eval_batch_size)[0])
    p = average(probs, weights)
    df = pd.DataFrame({"id": names, "Predicted": p[:, 1]})
    if table is not None:
        known = [i for i, n in enumerate(names) if n in table]
        if not known:
            raise MedlibError(f"--labels {labels} names none of the {len(names)} samples in {input_dir}.")
        y = [table[names[i]] for i in known]
        df.attrs["metrics"] = {**evaluate(y, p[known], "binary-class"), "n": len(known)}
    if out_csv is not None:  # last: a failure above leaves no CSV behind
        atomic.write_text(out_csv, df.to_csv(index=False))
    return df


def cmd_predict(args) -> None:
    df = predict_folder(args.checkpoint, args.input, args.out, args.labels, args.weights, args.device)
    print(f"wrote {len(df)} predictions to {args.out}")
    if "metrics" in df.attrs:
        m = df.attrs["metrics"]
        print(f"AUC {m['auc']:.4f}  ACC {m['acc']:.4f}  (n={m['n']} labelled)")


def add_command(sub) -> None:
    p = sub.add_parser("predict", help="submission CSV (id,Predicted) from one or more M3DV checkpoints")
    p.add_argument("--checkpoint", nargs="+", required=True, help="one or more best.pt; several are averaged")
    p.add_argument("--input", required=True, help="folder of candidateN.npz")
    p.add_argument("--out", required=True, help="CSV to write")
    p.add_argument("--labels", default=None, help="labels CSV (name,label or name,lable): print AUC too")
    p.add_argument("--weights", nargs="+", type=float, default=None, help="ensemble weights, one per checkpoint")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_predict)
