/* Test mode: real Stripe.js from js.stripe.com, the Payment Element and confirmPayment,
   the integration Stripe recommends. The browser confirms the PaymentIntent with Stripe
   itself (3-D Secure included); on success Stripe.js goes on to the success page. */
"use strict";

(function () {
  const page = window.Checkout;
  if (!page.stripeReady()) return;

  const stripe = Stripe(page.config.publishableKey);
  const elements = stripe.elements({clientSecret: page.config.clientSecret});
  page.clearCardElement();
  elements.create("payment").mount("#card-element");

  page.onSubmit(async () => {
    page.say("Confirming the payment with Stripe …");
    const {error} = await stripe.confirmPayment({
      elements,
      confirmParams: {return_url: page.config.completeUrl},
    });
    // Reached only when the payment did not go through (otherwise Stripe.js has navigated
    // to return_url). The webhook tells the server about a decline; show it meanwhile.
    if (error.type === "card_error" || error.type === "validation_error") {
      page.fail(error.type === "card_error" ? page.failureMessage(error) : error.message);
      if (error.type === "card_error") page.watchOrder();
    } else {
      page.fail("Stripe could not confirm the payment: " + error.message + " Try again.");
    }
  });
})();
