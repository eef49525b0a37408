"""Chain factories the tests serve as routes, beside the example app's."""
