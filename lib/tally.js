'use strict';

// How many of something (requests in flight, live streams) are held, in all and per user.
// A user's entry goes away when it drops to zero, so the map holds only users with some held.

class UserTally {
  constructor() {
    this.total = 0;
    this._byUser = new Map();
  }

  /** How many `userId` holds. */
  of(userId) {
    return this._byUser.get(userId) ?? 0;
  }

  /** Adds `delta` (1 or -1) to `userId`'s count and to the total. */
  add(userId, delta) {
    this.total += delta;
    const count = this.of(userId) + delta;
    if (count > 0) this._byUser.set(userId, count);
    else this._byUser.delete(userId);
  }
}

module.exports = { UserTally };
