"""Would real Stripe accept this request? Each request the package sent (recorded by
tutorial_server.lab.stripe_http) is checked against stripe-python's typed params for the pinned
API version. Used by tests/test_stripe_fidelity.py and, over the whole session, by conftest.py.
"""
from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from collections import Counter
from typing import Any, Literal, Union, get_args, get_origin

import stripe
import stripe.params
import typing_extensions
from stripe._request_options import RequestOptions

from tutorial_server.course.differences import OFFLINE_ONLY_PARAMS
from tutorial_server.gateway import API_VERSION

# Every endpoint the package calls, and the stripe-python service method that calls it: the
# method's `params` annotation names the TypedDict (stripe/params/) that says what real Stripe
# accepts. An endpoint not listed here (or in gateway.OFFLINE_ONLY_PARAMS) fails the check,
# so a new call is added deliberately.
SDK_CALLS: dict[tuple[str, str], tuple[type, str]] = {
    ("POST", "/v1/payment_intents"): (stripe.PaymentIntentService, "create"),
    ("GET", "/v1/payment_intents/{id}"): (stripe.PaymentIntentService, "retrieve"),
    ("POST", "/v1/payment_intents/{id}"): (stripe.PaymentIntentService, "update"),
    ("POST", "/v1/payment_intents/{id}/confirm"): (stripe.PaymentIntentService, "confirm"),
    ("POST", "/v1/payment_intents/{id}/cancel"): (stripe.PaymentIntentService, "cancel"),
    ("POST", "/v1/payment_methods"): (stripe.PaymentMethodService, "create"),
    ("GET", "/v1/tokens/{id}"): (stripe.TokenService, "retrieve"),
    ("GET", "/v1/events"): (stripe.EventService, "list"),  # webhook_delivery.py, notebooks
    ("GET", "/v1/events/{id}"): (stripe.EventService, "retrieve"),  # webhook_delivery.py
    # After the payment (refunds.py, disputes.py): a Refund, its re-reads, the disputed Charge.
    ("POST", "/v1/refunds"): (stripe.RefundService, "create"),
    ("GET", "/v1/refunds"): (stripe.RefundService, "list"),
    ("GET", "/v1/refunds/{id}"): (stripe.RefundService, "retrieve"),
    ("GET", "/v1/charges/{id}"): (stripe.ChargeService, "retrieve"),
    # The other way (checkout_sessions.py): a Checkout Session, its re-reads, its expiry; the
    # tests and notebook 09 read its line items.
    ("POST", "/v1/checkout/sessions"): (stripe.checkout.SessionService, "create"),
    ("GET", "/v1/checkout/sessions/{id}"): (stripe.checkout.SessionService, "retrieve"),
    ("POST", "/v1/checkout/sessions/{id}/expire"): (stripe.checkout.SessionService, "expire"),
    ("GET", "/v1/checkout/sessions/{id}/line_items"): (stripe.checkout.SessionLineItemService,
                                                       "list"),
}

# Keys of stripe-python's RequestOptions (idempotency_key, stripe_account, ...): the old-style
# params TypedDicts inherit them, but they travel as headers, never as form parameters.
REQUEST_OPTION_KEYS = frozenset(RequestOptions.__annotations__)


def params_typeddict(service: type, method: str) -> type:
    annotation = inspect.signature(getattr(service, method)).parameters["params"].annotation
    [name] = re.findall(r"\b(\w+Params)\b", str(annotation))
    # Checkout's params live in their own namespace (stripe.params.checkout), like the services.
    namespace = stripe.params.checkout if service.__module__.startswith("stripe.checkout") \
        else stripe.params
    return getattr(namespace, name)


def sdk_endpoint(service: type, method: str) -> tuple[str, str]:
    """(HTTP method, path template) as the SDK's own source code calls it."""
    source = inspect.getsource(getattr(service, method))
    match = re.search(r'self\._request\(\s*"(\w+)",\s*"(/v1/[^"]*)"', source)
    assert match, f"cannot find the endpoint in {service.__name__}.{method}"
    return match.group(1).upper(), re.sub(r"\{\w+\}", "{id}", match.group(2))


def _template_regex(template: str) -> re.Pattern:
    return re.compile("^" + re.escape(template).replace(r"\{id\}", "[^/]+") + "$")


KNOWN_ENDPOINTS = {endpoint: _template_regex(endpoint[1])
                   for endpoint in [*SDK_CALLS, *OFFLINE_ONLY_PARAMS]}


def endpoint_of(method: str, path: str) -> tuple[str, str] | None:
    for endpoint, pattern in KNOWN_ENDPOINTS.items():
        if endpoint[0] == method and pattern.match(path):
            return endpoint
    return None


# NotRequired[...] / Required[...]: typing's own from Python 3.11 (typing_extensions' before).
_REQUIRED_MARKERS = tuple({typing_extensions.NotRequired, typing_extensions.Required,
                           getattr(typing, "NotRequired", typing_extensions.NotRequired),
                           getattr(typing, "Required", typing_extensions.Required)})


def _resolve(annotation: Any, namespace: dict) -> Any:
    while True:
        if isinstance(annotation, str):
            annotation = eval(annotation, namespace)  # noqa: S307 - the SDK's own annotations
        elif isinstance(annotation, typing.ForwardRef):
            annotation = eval(annotation.__forward_arg__, namespace)  # noqa: S307
        elif get_origin(annotation) in _REQUIRED_MARKERS:
            annotation = get_args(annotation)[0]
        else:
            return annotation


_SHAPE_MISMATCH = ("plain value", "a list must be sent")


def _why_not(segments: list[str], value: str, annotation: Any, namespace: dict) -> str | None:
    """None if the form parameter `segments` = `value` fits `annotation`; else the reason."""
    annotation = _resolve(annotation, namespace)
    origin = get_origin(annotation)
    if annotation is Any:
        return None
    if origin in (Union, types.UnionType):
        members = [_resolve(m, namespace) for m in get_args(annotation)]
        literals = [v for m in members if get_origin(m) is Literal for v in get_args(m)]
        members = [m for m in members if get_origin(m) is not Literal]
        if literals:  # Literal[''] | Literal['manual'] -> Literal['', 'manual']
            members.append(Literal[tuple(literals)])
        reasons = []
        for member in members:
            reason = _why_not(segments, value, member, namespace)
            if reason is None:
                return None
            reasons.append(reason)
        # The most telling reason: from the member whose shape fits (a hash, a list, a value).
        return max(reasons, key=lambda r: not any(s in r for s in _SHAPE_MISMATCH))
    if typing_extensions.is_typeddict(annotation):
        if not segments:
            return f"{annotation.__name__} is a hash, sent here as a plain value"
        key = segments[0]
        if key not in annotation.__required_keys__ | annotation.__optional_keys__:
            return f"'{key}' is not a parameter of {annotation.__name__}"
        return _why_not(segments[1:], value, annotation.__annotations__[key],
                        vars(sys.modules[annotation.__module__]))
    if origin is list:
        if not segments or not segments[0].isdigit():
            return "a list must be sent as key[0], key[1], ..."
        return _why_not(segments[1:], value, get_args(annotation)[0], namespace)
    if origin is dict or (isinstance(origin, type) and issubclass(origin, dict)):
        if not segments:
            return "a hash, sent here as a plain value"
        args = get_args(annotation)
        return _why_not(segments[1:], value, args[-1] if args else Any, namespace)
    if segments:
        return f"a plain value ({annotation}) has no sub-parameter [{segments[0]}]"
    if origin is Literal:
        allowed = [str(v).lower() if isinstance(v, bool) else str(v)
                   for v in get_args(annotation)]
        return None if value in allowed else f"{value!r} is not one of {allowed[:8]}"
    if annotation is bool:
        return None if value in ("true", "false") else f"{value!r} is not a boolean"
    if annotation is int:
        return None if re.fullmatch(r"-?\d+", value) else f"{value!r} is not an integer"
    if annotation is float:
        return None if re.fullmatch(r"-?\d+(\.\d+)?", value) else f"{value!r} is not a number"
    return None  # str, and anything else: any string


def request_problems(record: dict) -> list[str]:
    """Why real Stripe's current API version would not accept this recorded request."""
    method, path = record["method"], record["path"]
    endpoint = endpoint_of(method, path)
    if endpoint is None:
        return [f"{method} {path}: an endpoint the package is not known to call. Add it to "
                "SDK_CALLS in tests/test_stripe_fidelity.py (with the SDK method that calls "
                "it) or, if only the offline stand-in has it, to gateway.OFFLINE_ONLY_PARAMS."]
    where = f"{method} {endpoint[1]}"
    offline_only = OFFLINE_ONLY_PARAMS.get(endpoint, frozenset())
    typeddict = params_typeddict(*SDK_CALLS[endpoint]) if endpoint in SDK_CALLS else None
    problems = []
    sent = set()
    for key, values in record["params"].items():
        segments = re.findall(r"[^\[\]]+", key)
        sent.add(segments[0])
        if segments[0] in offline_only:
            continue
        if typeddict is None:
            problems.append(f"{where} sends {key}: not a Stripe endpoint, and not listed for "
                            f"it in gateway.OFFLINE_ONLY_PARAMS ({sorted(offline_only)})")
            continue
        if segments[0] in REQUEST_OPTION_KEYS:
            problems.append(f"{where} sends {key}: a request option (a header), not a parameter")
            continue
        for value in values:
            reason = _why_not(segments, value, typeddict, {})
            if reason is not None:
                problems.append(
                    f"{where} sends {key}={value!r}, which real Stripe would not accept: "
                    f"{reason} (stripe.params.{typeddict.__name__}, stripe-python "
                    f"{stripe.VERSION}, API version {stripe.api_version})")
    if typeddict is not None:
        for key in sorted(typeddict.__required_keys__ - sent):
            problems.append(f"{where} lacks the required parameter {key!r} "
                            f"(stripe.params.{typeddict.__name__})")
    return problems


def unaccepted_requests(records: list[dict]) -> str:
    """'' if real Stripe would accept every recorded request; else a report for the failure."""
    problems = Counter(p for record in records for p in request_problems(record))
    if not problems:
        return ""
    return (f"{sum(problems.values())} Stripe request(s) the package sent would not be accepted "
            f"by real Stripe (API version {API_VERSION}). Fix the call; or, if only the offline "
            "stand-in needs it, list it in gateway.OFFLINE_ONLY_PARAMS and OFFLINE_DIFFERENCES:\n"
            + "\n".join(f"  - {p}" + (f" (x{n})" if n > 1 else "")
                        for p, n in sorted(problems.items())))
