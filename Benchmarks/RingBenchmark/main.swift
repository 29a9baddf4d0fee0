print("ring")
