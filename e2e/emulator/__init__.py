"""In-process AWS emulator for the iam-operator e2e suite.

moto serves IAM, STS and EKS; this package adds what moto lacks (EKS Pod
Identity), fault injection, a call log and a small control API.
"""
