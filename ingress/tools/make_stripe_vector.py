"""Builds the checked-in Stripe signature vector with Stripe's official Python library.

A paid `checkout.session.completed` event is assembled from the shared Stripe fixtures
(event envelope + checkout session), given Landlord's metadata, and signed with
`stripe.WebhookSignature.generate_signature_header`. Landlord's verifier must accept it.

    python ingress/tools/make_stripe_vector.py ../shared/fixtures/stripe ingress/tests/vectors
"""
import json
import pathlib
import sys

import stripe

fixtures, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
event = json.loads((fixtures / "event.json").read_text())
session = json.loads((fixtures / "checkout.session.json").read_text())
session.update(
    {
        "status": "complete",
        "payment_status": "paid",
        "mode": "subscription",
        "metadata": {
            "subdomain": "acme-bakery",
            "store_name": "Acme Bakery",
            "package_id": "2",
            "subscription_type_id": "1",
        },
    }
)
session["customer_details"]["email"] = "owner@acme-bakery.example"
event.update({"id": "evt_1VectorStripeOfficialLib", "type": "checkout.session.completed", "api_version": "2025-06-30.basil"})
event["data"] = {"object": session}

body = json.dumps(event, indent=2)
secret = "whsec_test_vector_5f3c2b9a8e7d6c5b4a39281706f5e4d3"
timestamp = 1767225600  # 2026-01-01T00:00:00Z, fixed so the vector never changes
header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp)
# Check it the way Stripe does before writing it down.
stripe.WebhookSignature.verify_header(body, header, secret, tolerance=None)

(out / "stripe_checkout_completed.json").write_text(body)
(out / "stripe_checkout_completed.meta.json").write_text(
    json.dumps({"secret": secret, "timestamp": timestamp, "header": header, "library": f"stripe-python {stripe.VERSION}"}, indent=2) + "\n"
)
print(header)
