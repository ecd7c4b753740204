# BEGIN SOLUTION
model.compile(optimizer="adam",
              loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
# END SOLUTION
