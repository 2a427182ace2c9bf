"""Make docs/report.png, the README's picture of a run's page: the bundled sample run (the Alpaca-family
fixtures, as in the README's Quick start) converted, its page opened in headless Chromium, the top of it
captured and saved with a 128-colour palette (small enough for the repository).

    python scripts/report_screenshot.py            # needs chromium (apt-get install -y chromium fonts-noto-cjk)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def main() -> int:
    browser = next((b for b in BROWSERS if Path(b).exists()), None) or shutil.which("chromium")
    if browser is None:
        print("no Chromium found: apt-get install -y chromium fonts-noto-cjk", file=sys.stderr)
        return 1
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out" / "sample.parquet"
        subprocess.run([sys.executable, "-m", "kodolly", "convert", "fixtures/alpaca", "--from", "alpaca", "-o", str(out), "--no-progress"],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        shot = Path(tmp) / "shot.png"
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp}/profile", "--window-size=1100,2000",
                        f"--screenshot={shot}", out.with_name("sample.report.html").as_uri()],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        image = Image.open(shot).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
        target = ROOT / "docs" / "report.png"
        image.save(target, optimize=True)
    print(f"wrote {target.relative_to(ROOT)} ({target.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
