hidden_params = 784 * 128 + 128  # SOLUTION
output_params = 128 * 10 + 10  # SOLUTION
total_params = hidden_params + output_params  # SOLUTION
print(hidden_params, output_params, total_params)
