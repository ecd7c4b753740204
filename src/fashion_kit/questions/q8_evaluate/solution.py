test_loss, test_acc = model.evaluate(test_images, test_labels)  # SOLUTION
# BEGIN zh-TW
print("測試資料的損失：", test_loss)
print("測試資料的準確率：", test_acc)
# END zh-TW
# BEGIN en
print("test loss:", test_loss)
print("test accuracy:", test_acc)
# END en
