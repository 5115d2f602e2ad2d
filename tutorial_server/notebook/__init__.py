"""What the notebooks import, so their cells show the payment idea and not the wiring.

    from tutorial_server.notebook import connect_lab, show
    lab = connect_lab()          # the running lab, or one of the notebook's own
    order = lab.create_order("80980928378932", 10)
    show(order)

connect.py finds or starts the lab; client.py is its HTTP client (LabClient); customer.py plays
the customer (test cards, 3-D Secure), stripes_page.py on Stripe's hosted page; display.py shows things; widgets.py has the ipywidgets;
hub.py knows where a learner's lab is on JupyterHub. This file names the notebooks' API.
"""
from .client import LabClient, new_customer
from .connect import (backend_seen_from_here, connect_lab, rewiring_possible, signing_possible,
                      stripe_account_possible)
from .customer import TEST_CARDS, PaymentRefused
from .display import (check, link, redact, show, show_differences, side_by_side, to_json,
                      traces_side_by_side)
from .stripes_page import StripesPageRefused, pay_on_stripes_page

__all__ = ["LabClient", "connect_lab", "show", "check", "link", "side_by_side", "to_json",
           "redact", "show_differences", "signing_possible", "rewiring_possible",
           "stripe_account_possible",
           "backend_seen_from_here", "new_customer", "PaymentRefused", "TEST_CARDS",
           "traces_side_by_side", "pay_on_stripes_page", "StripesPageRefused"]
