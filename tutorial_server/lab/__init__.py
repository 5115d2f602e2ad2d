"""The lab around the merchant server: what a learner's laptop, a classroom and a JupyterHub
need, and a shop of your own would not.

app.py builds the lab's app (the merchant server plus dashboard, reset, shop, the offline
Stripe.js relay and the trace); launcher.py starts the offline Stripe and the server together
(`serve`, `lab`); cli.py is `python -m tutorial_server.lab`; process.py runs a lab as a process
(notebooks, tests, benchmarks); offline_stripe.py starts the offline Stripe and talks to it with
the lab's key, and stand_in.py is the program that serves it (the only importer of localstripe);
hub.py and jupyter_proxy.py serve a class on JupyterHub; progress.py, class_progress.py and
class_progress_service.py show an instructor the class's progress there; notebooks.py copies the
notebooks the package ships (cli_course.py has both commands).
"""
