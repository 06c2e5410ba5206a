"""Distributed MEDI instruction finetuning: data, task-homogeneous batches, loss, Ray Train entry point."""
