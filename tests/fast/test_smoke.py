def test_order_in_process(lab, customer):
    order = lab.order(customer=customer)
    assert order["order"]["status"] == "created"
