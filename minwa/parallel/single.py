"""SingleProcess: the training engine of a one-rank job (no communication)."""


class SingleProcess:
    """forward, then backward and the solver step, on one process."""

    def __init__(self, net, solver):
        self.net = net
        self.solver = solver

    def forward(self, feed):
        return self.net.forward(feed)

    def backward_and_update(self):
        self.net.backward()
        self.solver.step()

    def skip_update(self):
        """Count the step without changing the weights (a non-finite loss was skipped)."""
        self.solver.iter += 1

    def finish(self):
        return None

    def solver_state(self):
        return self.solver.state_dict()

    def load_solver_state(self, state):
        self.solver.load_state_dict(state)
