# BEGIN SOLUTION NO PROMPT
class_names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# END SOLUTION
""" # BEGIN PROMPT
class_names = [...]
""" # END PROMPT
