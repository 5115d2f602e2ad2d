/* The success page asks this SERVER, not Stripe, whether the order is paid: the server
   decides, once Stripe's signed webhook has arrived and checked out. It polls
   GET /api/orders/<id> twice a second, shows its progress, and gives up with a clear
   message after the page's wait time (data-wait-seconds). */
"use strict";

(function () {
  const root = document.getElementById("waiting");
  const config = root.dataset;
  const heading = document.getElementById("outcome-heading");
  const outcome = document.getElementById("outcome");
  const progress = document.getElementById("progress");
  const progressText = document.getElementById("progress-text");
  const timeoutBox = document.getElementById("timeout");
  const notPaidBox = document.getElementById("not-paid");
  const unpaidBox = document.getElementById("unpaid");
  const paidPanel = document.getElementById("paid");
  const waitMs = Number(config.waitSeconds) * 1000;
  let started = 0;
  let checks = 0;

  function showOrder(order) {
    document.getElementById("order-status").textContent = order.status;
    document.getElementById("order-attempts").textContent = String(order.attempts);
  }

  async function getJSON(url) {
    const response = await fetch(url, {cache: "no-store", headers: {"Accept": "application/json"}});
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }

  async function showInventory() {
    const list = document.getElementById("inventory");
    try {
      const [inventory, products] = await Promise.all(
        [getJSON(config.inventoryUrl), getJSON(config.productsUrl)]);
      const names = Object.fromEntries(products.data.map((p) => [p.id, p.name]));
      list.replaceChildren(...inventory.data.map((item) => {
        const li = document.createElement("li");
        li.textContent = (names[item.product] || item.product) + " × " + item.quantity
          + (item.order === config.orderId ? " (this order)" : " (order " + item.order + ")");
        return li;
      }));
    } catch (err) {
      const li = document.createElement("li");
      li.textContent = "Could not load the inventory (" + err.message + ").";
      list.replaceChildren(li);
    }
  }

  function showPaid(order) {
    showOrder(order);
    document.getElementById("paid-after").textContent = "Confirmed by the server after "
      + ((Date.now() - started) / 1000).toFixed(1) + " s (" + checks
      + (checks === 1 ? " check" : " checks") + " of the order).";
    root.hidden = true;
    heading.textContent = "Payment confirmed: your order is paid";
    paidPanel.hidden = false;
    showInventory();
  }

  function showTimeout() {
    heading.textContent = "Payment not confirmed yet";
    outcome.textContent = "Stopped waiting: the server has not confirmed the payment.";
    timeoutBox.hidden = false;
  }

  function showNotPaid(text) {
    heading.textContent = "Payment not completed";
    outcome.textContent = text;
    notPaidBox.hidden = false;
  }

  async function poll() {
    let order = null;
    checks += 1;
    try {
      order = (await getJSON(config.orderUrl)).order;
      showOrder(order);
    } catch (err) {
      // The server may be restarting; keep asking until the wait is over.
    }
    if (order && order.status === "paid") return showPaid(order);
    if (order && order.status === "canceled") {
      return showNotPaid("This order was canceled and can no longer be paid.");
    }
    if (order && config.paymentUnderway !== "true") {
      // Stripe had accepted no payment for this order when the page was made: there is no
      // webhook to wait for, so do not say "do not pay again"; send the customer to pay.
      heading.textContent = "This order is not paid yet";
      outcome.textContent = "Nothing to wait for: no payment for this order has reached Stripe.";
      unpaidBox.hidden = false;
      [progress, progressText, document.getElementById("progress-label")].forEach(
        (el) => { el.hidden = true; });
      return;
    }
    const elapsed = Date.now() - started;
    progress.value = Math.min(elapsed / 1000, Number(config.waitSeconds));
    progressText.textContent = "Checked " + checks + (checks === 1 ? " time" : " times")
      + " in " + Math.floor(elapsed / 1000) + " s; the server says the order is "
      + (order ? order.status : "unknown") + ".";
    if (elapsed >= waitMs) return showTimeout();
    setTimeout(poll, 500);
  }

  function start() {
    started = Date.now();
    checks = 0;
    timeoutBox.hidden = true;
    heading.textContent = "Waiting for the server to confirm your payment";
    outcome.textContent = "Waiting for Stripe's webhook to reach the server …";
    poll();
  }

  document.getElementById("check-again").addEventListener("click", start);
  if (config.redirectFailed === "true") {
    showNotPaid("Stripe reports that the payment did not go through.");
  } else {
    start();
  }
})();
