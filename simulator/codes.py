"""Binance USD-M error codes and messages the simulated exchange answers with (filter codes live in utils/filters)."""

from __future__ import annotations

from utils.errors import BinanceError

# (code, message) as Binance sends them on the wire.
INVALID_SYMBOL = (-1121, "Invalid symbol.")
INVALID_TIF = (-1115, "Invalid timeInForce.")
INVALID_ORDER_TYPE = (-1116, "Invalid orderType.")
INVALID_LIMIT = (-1130, "Data sent for parameter 'limit' is not valid.")
BAD_PARAM_COMBO = (-1128, "Combination of optional parameters invalid.")
LOOKUP_TOO_LONG = (-1127, "More than 168 hours between startTime and endTime.")
UNKNOWN_ORDER = (-2011, "Unknown order sent.")
NO_SUCH_ORDER = (-2013, "Order does not exist.")
MARGIN_INSUFFICIENT = (-2019, "Margin is insufficient.")
UNABLE_TO_FILL = (-2020, "Unable to fill.")
WOULD_IMMEDIATELY_TRIGGER = (-2021, "Order would immediately trigger.")
REDUCE_ONLY_REJECT = (-2022, "ReduceOnly Order is rejected.")
MAX_LEVERAGE_RATIO = (-2027, "Exceeded the maximum allowable position at current leverage.")
MIN_LEVERAGE_RATIO = (-2028, "Leverage is smaller than permitted: insufficient margin balance.")
CLIENT_ORDER_ID_INVALID = (-4015, "Client order id is not valid.")
MAX_STOP_ORDERS = (-4045, "Reach max stop order limit.")
NO_NEED_TO_CHANGE_MARGIN_TYPE = (-4046, "No need to change margin type.")
MARGIN_TYPE_OPEN_ORDERS = (-4047, "Margin type cannot be changed if there exists open orders.")
MARGIN_TYPE_POSITION = (-4048, "Margin type cannot be changed if there exists position.")
NO_NEED_TO_CHANGE_POSITION_SIDE = (-4059, "No need to change position side.")
POSITION_SIDE_NOT_MATCH = (-4061, "Order's position side does not match user's setting.")
POSITION_SIDE_OPEN_ORDERS = (-4067, "Position side cannot be changed if there exists open orders.")
POSITION_SIDE_POSITION = (-4068, "Position side cannot be changed if there exists position.")
DUPLICATED_CLIENT_ORDER_ID = (-4116, "ClientOrderId is duplicated.")
USE_ALGO_ENDPOINT = (
    -4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.")
MARKET_ORDER_PERCENT_PRICE = (-4131, "The counterparty's best price does not meet the PERCENT_PRICE filter limit.")
CLOSE_POSITION_EXISTS = (
    -4130, "An open stop or take profit order with GTE and closePosition in the direction is existing.")
QUANTITY_WITH_CLOSE_POSITION = (-4137, "Quantity must be zero with closePosition equals true")
ISOLATED_LEVERAGE_REDUCTION = (-4161, "Leverage reduction is not supported in Isolated Margin Mode with open positions")
FOK_REJECT = (-5021, "Due to the order could not be filled immediately, the FOK order has been rejected. "
                     "The order will not be recorded in the order book.")
GTX_REJECT = (-5022, "Due to the order could not be executed as maker, the Post Only order will be rejected. "
                     "The order will not be recorded in the order book.")

# Reason text Binance puts in ALGO_UPDATE "rm" when a triggered reduce-only order has nothing to reduce.
ALGO_REDUCE_ONLY_REASON = "Reduce Only reject"


def reject(error: tuple[int, str]) -> BinanceError:
    """The exception for one of the (code, message) pairs above."""
    return BinanceError(error[0], error[1])


def mandatory(parameter: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{parameter}' was not sent, was empty/null, or malformed.")


def not_required(parameter: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{parameter}' sent when not required.")


def one_of(first: str, second: str) -> BinanceError:
    return BinanceError(-1102, f"Param '{first}' or '{second}' must be sent, but both were empty/null!")


def invalid_leverage(leverage: int) -> BinanceError:
    return BinanceError(-4028, f"Leverage {leverage} is not valid")
