"""The backtest shell: recorded candles through the same strategies, risk guards, execution core and simulated
exchange as sim and live mode, driven synchronously by the simulated clock (docs/backtesting.md)."""
