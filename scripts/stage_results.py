"""git-add the complete run folders of results/ (run.json status complete); partial ones stay local."""

import json
import subprocess
from pathlib import Path

done = [
    p.parent
    for p in sorted(Path("results").glob("*/run.json"))
    if json.loads(p.read_text()).get("status") == "complete"
]
subprocess.run(["git", "add", "results/README.md", *map(str, done)], check=True)
print(f"staged {len(done)} complete run folders")
