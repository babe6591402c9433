"""The feedback tracker (发起-响应-反馈): what each department owes on each case, and when."""
