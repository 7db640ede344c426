# Aliases for ./dev, which needs nothing but sh and Python 3.11+.
.PHONY: run test bench
run:
	./dev run
test:
	./dev test
bench:
	./dev bench
