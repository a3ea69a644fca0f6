#!/usr/bin/env python3
"""Fits the polynomial of the vectorized erfc in Sources/SIMDKernels/SmoothActivations.swift.

erfc(z) = t * exp(-z^2 + P(t)) with t = 1 / (1 + z/2), z >= 0 (the form of
Chebyshev-fitted erfc approximations): P(t) = log(erfc(z) / t) + z^2 is smooth
on t in [1/6, 1] (z in [0, 10]; float32 erfc underflows before z = 10). A
least-squares fit at Chebyshev nodes in float64 against math.erfc; an absolute
error e in P is a relative error of about e in erfc. Prints the coefficients
(constant first) and the largest relative error of the float64 formula on a
dense grid.

    python3 scripts/fit-erfc.py
"""
import math
import numpy as np

DEGREE = 9
T_LOW = 1 / 6


def target(t):
    z = 2 * (1 / t - 1)
    return math.log(math.erfc(z) / t) + z * z


nodes = 0.5 * (1 + T_LOW) + 0.5 * (1 - T_LOW) * np.cos(np.pi * (np.arange(400) + 0.5) / 400)
values = np.array([target(t) for t in nodes])
fit = np.polynomial.Polynomial.fit(nodes, values, DEGREE).convert()
coefficients = fit.coef
for i, c in enumerate(coefficients):
    print(f"c{i} = {c:.9e}")

worst = 0.0
for z in np.linspace(0, 10, 20001):
    t = 1 / (1 + z / 2)
    p = sum(c * t**i for i, c in enumerate(coefficients))
    approx = t * math.exp(-z * z + p)
    worst = max(worst, abs(approx / math.erfc(z) - 1))
print(f"max relative error (float64 evaluation) on z in [0, 10]: {worst:.2e}")
