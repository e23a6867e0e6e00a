use chrono::Utc;
use uuid::Uuid;

use super::*;

fn usage() -> Usage {
    Usage {
        graph_exec_id: Uuid::new_v4(),
        graph_id: Uuid::new_v4(),
        node_exec_id: Uuid::new_v4(),
        node_id: "n".into(),
        block_id: "b".into(),
    }
}

#[test]
fn a_new_ledger_opens_with_the_starting_grant() {
    let rules = CreditRules::default();
    let ledger = CreditLedger::default();
    assert_eq!(ledger.balance_or_grant(&rules), 1500);
    let events = ledger.charge(Uuid::nil(), 0, usage(), &rules, Utc::now()).unwrap();
    assert_eq!(events.len(), 2, "the grant, then the count");
    let ledger = CreditLedger::from_events(&events);
    assert_eq!((ledger.balance, ledger.node_executions), (1500, 1));
    assert_eq!(ledger.charge(Uuid::nil(), 0, usage(), &rules, Utc::now()).unwrap().len(), 1, "opened once");
}

#[test]
fn every_thresholdth_node_execution_costs_and_the_balance_never_goes_below_zero() {
    let rules = CreditRules { starting_grant: 2, count_threshold: 3, cost_per_threshold: 1, credits_per_1k_tokens: 0 };
    let mut ledger = CreditLedger::default();
    let mut charged = Vec::new();
    for _ in 0..9 {
        match ledger.charge(Uuid::nil(), 0, usage(), &rules, Utc::now()) {
            Ok(events) => {
                for e in &events {
                    ledger.evolve(e);
                    if let CreditEvent::NodeExecutionCharged { amount, .. } = e {
                        charged.push(*amount);
                    }
                }
            }
            Err(CreditError::InsufficientBalance { balance, amount }) => {
                assert_eq!((balance, amount), (0, 1));
                break;
            }
        }
    }
    assert_eq!(charged, [0, 0, 1, 0, 0, 1, 0, 0], "the ninth needed a credit there was not");
    assert_eq!(ledger.balance, 0);
    let block = ledger.charge(Uuid::nil(), 5, usage(), &rules, Utc::now());
    assert!(block.is_err(), "a block cost above the balance is refused");
}

#[test]
fn admins_add_and_remove_credits() {
    let rules = CreditRules::default();
    let ledger = CreditLedger::default();
    let events =
        ledger.add(Uuid::nil(), -500, "k".into(), TransactionType::Grant, Some("fix".into()), None, &rules, Utc::now());
    assert_eq!(CreditLedger::from_events(&events).balance, 1000);
}

#[test]
fn a_model_calls_tokens_cost_per_thousand_rounded_up_and_never_more_than_is_left() {
    let rules = CreditRules { starting_grant: 3, credits_per_1k_tokens: 2, ..CreditRules::default() };
    assert_eq!((rules.cost_of_tokens(0), rules.cost_of_tokens(1), rules.cost_of_tokens(1000)), (0, 1, 2));
    assert_eq!(rules.cost_of_tokens(1001), 3);
    assert_eq!(rules.cost_of_tokens(u64::MAX), i64::MAX / 1000, "no overflow");
    let ledger = CreditLedger::default();
    let events = ledger.charge_tokens(Uuid::nil(), 1500, usage(), &rules, Utc::now());
    assert_eq!(events.len(), 2, "the grant, then the tokens");
    let ledger = CreditLedger::from_events(&events);
    assert_eq!((ledger.balance, ledger.node_executions), (0, 0), "3 credits charged, no node execution counted");
    assert!(ledger.charge_tokens(Uuid::nil(), 1500, usage(), &rules, Utc::now()).is_empty(), "nothing left to take");
    let free = CreditRules { credits_per_1k_tokens: 0, ..rules };
    assert!(CreditLedger::default().charge_tokens(Uuid::nil(), 5000, usage(), &free, Utc::now()).is_empty());
}
