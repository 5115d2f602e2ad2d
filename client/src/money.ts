// Amounts arrive from the server as integers in the currency's smallest unit (paise, cents;
// yen have none). The shop never computes a price: it only writes the server's integer for
// people, using the browser's own currency data (Intl) for the number of decimals.
//   formatAmount(134000, "inr") === "₹1,340.00"; formatAmount(500, "jpy") === "¥500"
export function formatAmount(amount: number, currency: string): string {
  const format = new Intl.NumberFormat("en-US", {style: "currency",
                                                 currency: currency.toUpperCase()});
  const decimals = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(amount / 10 ** decimals);
}
