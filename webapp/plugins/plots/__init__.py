"""Results > Plots: every Plotly figure a task reported."""
