"""What a terminal shows for the bytes written to it, for tests of what a user sees."""

from __future__ import annotations

from typing import List


class Screen:
    """What a terminal shows for the text written to it: rows of characters, a cursor."""

    def __init__(self) -> None:
        self.rows: List[List[str]] = [[]]
        self.row = 0
        self.col = 0

    def feed(self, text: str) -> None:
        for char in text:
            if char == "\r":
                self.col = 0
            elif char == "\n":  # as the terminal driver's ONLCR: a new row, from its start
                self.row, self.col = self.row + 1, 0
                if self.row == len(self.rows):
                    self.rows.append([])
            else:
                line = self.rows[self.row]
                line.extend(" " * (self.col + 1 - len(line)))
                line[self.col] = char
                self.col += 1

    def lines(self) -> List[str]:
        shown = ["".join(row).rstrip() for row in self.rows]
        while shown and not shown[-1]:
            shown.pop()
        return shown
