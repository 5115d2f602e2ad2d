"""Write notebooks/offline_differences.md, the full table of what the offline stand-in does
differently from real Stripe, from course/differences.py's OFFLINE_DIFFERENCES (tests check it is current).

    .venv/bin/python tools/offline_differences.py
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tutorial_server.course.differences import differences_markdown  # noqa: E402

PAGE = ROOT / "notebooks" / "offline_differences.md"


def page() -> str:
    return f"""[← 00 How a Stripe payment works](00_how_a_stripe_payment_works.ipynb) | [Contents](README.md)

# Appendix · What the offline stand-in does differently

Offline, [localstripe](https://pypi.org/project/localstripe/) plays Stripe. It runs every step
of the lab, but it is not Stripe. This is every difference the lab knows of, with what the lab
does about each. It is written from `OFFLINE_DIFFERENCES` in `tutorial_server/course/differences.py`,
each row naming the code that absorbs the difference (`tools/offline_differences.py`; in a notebook,
`show_differences()` shows the same table). Terms such as `latest_charge` or a card token are
explained in notebooks 03 and 05: come back here once you have met them.

{differences_markdown()}
"""


if __name__ == "__main__":
    PAGE.write_text(page())
    print(f"wrote {PAGE.relative_to(ROOT)}")
