print("accessgw")
