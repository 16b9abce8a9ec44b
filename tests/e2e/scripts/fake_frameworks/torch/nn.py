class Linear:
    def __init__(self, inputs, outputs):
        self.weight = [[0.5] * inputs for _ in range(outputs)]

    def forward(self, x):
        return x

    def state_dict(self):
        return {"weight": self.weight}
