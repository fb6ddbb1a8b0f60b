# Activation and loss codes: the integers fastnn.activations.CODES and
# fastnn.losses.CODES give each name, and the leaky ReLU slope of
# fastnn.activations.LEAKY_SLOPE. Python is the one source; the tests hold
# ACTIVATION_CODES, LOSS_CODES and LEAKY_RELU_SLOPE below against it.

cdef enum:
    SIGMOID = 0
    TANH = 1
    RELU = 2
    LEAKY_RELU = 3
    IDENTITY = 4
    SOFTMAX = 5      # output layer only: column-wise, not element-wise
    EXP = 6          # output layer only: the Poisson loss's canonical link

cdef enum:
    CROSS_ENTROPY = 0
    MSE = 1
    POISSON = 2      # half Poisson deviance, from the logits of an exp output

cdef double LEAKY_SLOPE = 0.01

ACTIVATION_CODES = {"sigmoid": SIGMOID, "tanh": TANH, "relu": RELU,
                    "leaky_relu": LEAKY_RELU, "identity": IDENTITY, "softmax": SOFTMAX, "exp": EXP}
LOSS_CODES = {"cross_entropy": CROSS_ENTROPY, "mse": MSE, "poisson": POISSON}
LEAKY_RELU_SLOPE = LEAKY_SLOPE
