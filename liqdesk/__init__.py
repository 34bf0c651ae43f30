"""liqdesk: a desktop liquidation-heatmap terminal for crypto perpetual futures.

Everything liqdesk draws as a "liquidation level" is an *estimate* from a model of
open interest, volume and leverage; only the recorded liquidation tape is exchange data.
"""

__version__ = "0.1.0"
